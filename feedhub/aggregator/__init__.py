"""The aggregator: poll upstream feeds and merge their new items into the post store."""
