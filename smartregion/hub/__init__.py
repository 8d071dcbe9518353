"""The ecosystem hub: actors, initiatives, use cases, challenges and solutions, matching, funding."""
