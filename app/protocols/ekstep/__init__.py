"""The Speech Recognition Open API of Open-Speech-EkStep (Vakyansh), and AI4Bharat's dialect of it."""
