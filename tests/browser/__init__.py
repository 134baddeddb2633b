"""Browser tests of the duty console: Playwright (Python) driving Debian's chromium."""
