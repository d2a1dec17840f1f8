"""The Slack side: Web API client, notifier, directory, Bolt app and its handlers."""
