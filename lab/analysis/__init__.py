"""What clients saw: pure functions over samples and step events. Never imports targets, engines or the
pipeline (`make lint` checks it)."""
