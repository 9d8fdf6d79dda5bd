"""The assistant's chat backend: this server's own chat worker (a local instruct model behind an
OpenAI-compatible endpoint, in its own process) or any OpenAI-compatible server."""
