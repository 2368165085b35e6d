"""mtpeft: multi-task parameter-efficient fine-tuning of decoder LLMs for information extraction."""

__version__ = "0.1.0"
