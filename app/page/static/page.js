// The page's two clients of this server: the OpenAI Realtime transcription WebSocket (GA dialect)
// for the microphone, and POST /v1/audio/transcriptions for a file. No framework, no build step.

const $ = (id) => document.getElementById(id);
const RATE = 24000; // audio/pcm in the GA dialect is 24 kHz mono PCM16

const key = $("key");
key.value = localStorage.getItem("asr-key") || "";
key.addEventListener("change", () => {
  localStorage.setItem("asr-key", key.value);
  loadModels();
});

function authHeaders() {
  return key.value ? { Authorization: `Bearer ${key.value}` } : {};
}

function setStatus(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle("error", isError);
}

async function errorText(response) {
  const body = await response.text();
  try {
    const parsed = JSON.parse(body);
    return (parsed.error && parsed.error.message) || body;
  } catch {
    return body || response.statusText;
  }
}

async function loadModels() {
  const select = $("model");
  const response = await fetch("/v1/models", { headers: authHeaders() });
  if (!response.ok) return; // e.g. a key is needed: the default model still works once it is given
  const { data } = await response.json();
  const chosen = select.value;
  select.replaceChildren(new Option("(server default)", ""));
  for (const model of data) select.append(new Option(model.id, model.id));
  select.value = chosen;
}

// -- microphone -> realtime WebSocket -----------------------------------------------------------

class LiveTranscript {
  constructor(element) {
    this.element = element;
    this.items = new Map(); // item_id -> <p>, in the order the server opened them
  }

  line(itemId) {
    let line = this.items.get(itemId);
    if (!line) {
      line = document.createElement("p");
      line.className = "partial";
      line.dataset.item = itemId;
      this.element.append(line);
      this.items.set(itemId, line);
    }
    return line;
  }

  delta(itemId, text) {
    const line = this.line(itemId);
    if (line.className === "partial") line.textContent += text;
  }

  completed(itemId, text) {
    const line = this.line(itemId);
    line.className = "final";
    line.textContent = text;
    if (!text.trim()) line.remove();
  }
}

class Recorder {
  constructor() {
    this.button = $("record");
    this.status = $("live-status");
    this.socket = null;
    this.context = null;
    this.stream = null;
    this.button.addEventListener("click", () => (this.socket ? this.stop() : this.start()));
  }

  async start() {
    const transcript = new LiveTranscript($("transcript"));
    $("transcript").replaceChildren();
    const model = $("model").value || "whisper-1";
    const params = new URLSearchParams({ intent: "transcription", model });
    if (key.value) params.set("api_key", key.value);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/v1/realtime?${params}`);
    this.socket = socket;
    this.button.textContent = "Stop";
    this.button.classList.add("recording");
    setStatus(this.status, "connecting");

    socket.onmessage = (message) => this.onEvent(JSON.parse(message.data), transcript);
    socket.onclose = (close) => {
      if (this.socket === socket) this.release();
      if (close.code !== 1000 && close.code !== 1005) setStatus(this.status, `closed: ${close.reason || close.code}`, true);
      else if (!this.status.classList.contains("error")) setStatus(this.status, "idle");
    };
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve, { once: true });
      socket.addEventListener("close", reject, { once: true });
    }).catch(() => null);
    if (socket.readyState !== WebSocket.OPEN) return;

    const transcription = { model };
    if ($("language").value) transcription.language = $("language").value;
    socket.send(JSON.stringify({
      type: "session.update",
      session: {
        type: "transcription",
        audio: { input: { format: { type: "audio/pcm", rate: RATE }, transcription, turn_detection: { type: "server_vad" } } },
      },
    }));
    try {
      await this.openMicrophone(socket);
      if (this.socket !== socket) this.closeMicrophone(); // refused or closed while the mic opened
      else setStatus(this.status, "listening");
    } catch (error) {
      // Closed meanwhile (a refused key closes the socket while the mic opens, and closing the
      // audio context fails the worklet's load): the close's reason stays on the page.
      if (this.socket === socket) setStatus(this.status, `microphone: ${error.message}`, true);
      socket.close(1000);
    }
  }

  async openMicrophone(socket) {
    // The browser's voice processing (made for calls) changes what the model hears; it gets raw audio.
    const raw = { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false };
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: raw });
    this.context = new AudioContext({ sampleRate: RATE });
    await this.context.audioWorklet.addModule("/page/mic-worklet.js");
    const source = this.context.createMediaStreamSource(this.stream);
    const capture = new AudioWorkletNode(this.context, "mic-capture");
    capture.port.onmessage = ({ data }) => {
      if (socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "input_audio_buffer.append", audio: base64(new Uint8Array(data)) }));
      }
    };
    // Connected through to the output (it writes silence) so that the graph keeps pulling it, and
    // held on the recorder so that neither node is collected while recording.
    source.connect(capture).connect(this.context.destination);
    this.nodes = [source, capture];
  }

  onEvent(event, transcript) {
    switch (event.type) {
      case "input_audio_buffer.speech_started":
        setStatus(this.status, "hearing speech");
        break;
      case "input_audio_buffer.speech_stopped":
        setStatus(this.status, "transcribing");
        break;
      case "conversation.item.input_audio_transcription.delta":
        transcript.delta(event.item_id, event.delta);
        break;
      case "conversation.item.input_audio_transcription.completed":
        transcript.completed(event.item_id, event.transcript);
        setStatus(this.status, this.context ? "listening" : "idle");
        if (!this.context && this.socket) this.socket.close(1000); // stopped: the last final is in
        break;
      case "conversation.item.input_audio_transcription.failed":
        setStatus(this.status, event.error.message, true);
        break;
      case "error":
        setStatus(this.status, event.error.message, true);
        break;
    }
  }

  stop() {
    // The open utterance is committed and its final awaited; the socket closes when it arrives.
    const socket = this.socket;
    this.closeMicrophone();
    this.button.textContent = "Record";
    this.button.classList.remove("recording");
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "input_audio_buffer.commit" }));
      setStatus(this.status, "finishing");
      setTimeout(() => socket.close(1000), 15000);
    }
  }

  closeMicrophone() {
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    if (this.context) this.context.close();
    this.stream = this.context = this.nodes = null;
  }

  release() {
    this.closeMicrophone();
    this.socket = null;
    this.button.textContent = "Record";
    this.button.classList.remove("recording");
  }
}

function base64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

// -- file -> /v1/audio/transcriptions -----------------------------------------------------------

async function transcribeFile(event) {
  event.preventDefault();
  const status = $("file-status");
  const result = $("file-result");
  const file = $("audio-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  form.append("model", $("model").value || "whisper-1");
  form.append("response_format", $("format").value);
  if ($("language").value) form.append("language", $("language").value);
  const streaming = $("stream").checked;
  if (streaming) form.append("stream", "true");
  result.textContent = "";
  setStatus(status, "transcribing");
  const response = await fetch("/v1/audio/transcriptions", { method: "POST", body: form, headers: authHeaders() });
  if (!response.ok) {
    setStatus(status, await errorText(response), true);
    return;
  }
  if (streaming) await readEvents(response, result);
  else {
    const text = await response.text();
    const type = response.headers.get("content-type") || "";
    result.textContent = type.includes("json") ? JSON.stringify(JSON.parse(text), null, 2) : text;
  }
  setStatus(status, "done");
}

async function readEvents(response, result) {
  // Server-sent events: transcript.text.delta while it decodes, transcript.text.done at the end.
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    const blocks = pending.split(/\r?\n\r?\n/);
    pending = blocks.pop();
    for (const block of blocks) {
      const data = block.split(/\r?\n/).filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trim()).join("\n");
      if (!data || data === "[DONE]") continue;
      const event = JSON.parse(data);
      if (event.type === "transcript.text.delta") result.textContent += event.delta;
      else if (event.type === "transcript.text.done") result.textContent = event.text;
    }
  }
}

$("upload").addEventListener("submit", (event) =>
  transcribeFile(event).catch((error) => setStatus($("file-status"), error.message, true)),
);
new Recorder();
loadModels();
