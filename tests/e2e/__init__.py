"""End-to-end tests of the admin in headless Chromium."""
