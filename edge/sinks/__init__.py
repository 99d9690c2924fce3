"""Event sinks: where recognition events go (MQTT through a persistent outbox)."""
