"""Replicas: two `signoff serve` processes on one database behind one emulated Slack."""
