"""The pilot: which cheaper LoRA configuration is not worse than the one in use."""
