"""What a run deploys and measures: the lab's own fleet, or any URL with a deploy command."""
