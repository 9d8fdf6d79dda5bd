"""The creative assistant: prompt writing, script → storyboard, conversations that remember,
and the projects and ratings they draw on (docs/assistant.md)."""
