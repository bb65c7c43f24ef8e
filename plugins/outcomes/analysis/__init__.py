"""The trial's analysis: between-arm estimates published with the marts (``effects``, computed
into the candidate by ``estimates``), docs/analysts-guide.md "Effects"."""
