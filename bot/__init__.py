"""The Telegram bot: transport between Telegram and the anonymizer pipeline (`python -m bot`)."""
