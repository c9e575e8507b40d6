"""Outbound webhooks (issue #21 §3): configured endpoints, signed payloads, a durable
delivery outbox and its worker. Imports crm_core only; agent_desktop wires it."""
