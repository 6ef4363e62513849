// Prosa's getting-started Node.js client, with only the host changed (passed as argv[2]).
const fs = require("fs");

const url = process.argv[2] + "/v2/speech/stt";
const apiKey = "node-client-key";

async function submitSttRequest(filename, wait) {
  const b64audio = fs.readFileSync(filename).toString("base64");
  const payload = { config: { model: "stt-general", wait: wait }, request: { data: b64audio } };
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "x-api-key": apiKey },
    body: JSON.stringify(payload),
  });
  return await response.json();
}

async function queryResult(jobId) {
  const response = await fetch(url + "/" + jobId, { headers: { "x-api-key": apiKey } });
  if (response.ok) {
    const job = await response.json();
    if (job.status === "complete") return job.result;
  }
  return null;
}

async function main() {
  const filename = process.argv[3];
  const now = await submitSttRequest(filename, true);
  const job = await submitSttRequest(filename, false);
  let result = null;
  while (result === null) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    result = await queryResult(job.job_id);
  }
  console.log(JSON.stringify({ wait_status: now.status, wait_result: now.result, polled_result: result }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
