"""Notifications machinery: event sequencer, stream wake-ups, SSE stream, webhook delivery, deadline jobs."""
