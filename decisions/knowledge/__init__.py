"""The knowledge base: its models, the topic document (export, import, checks), publishing, the
latest releases each process serves, and draft previews."""
