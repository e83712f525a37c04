"""Root conftest: the real local servers every test may use (HTTP, Slack stand-in, SMTP, Kafka)."""

pytest_plugins = [
    "tests.servers.http",
    "tests.servers.slack",
    "tests.servers.smtp",
    "tests.servers.kafka",
    "tests.reliability.log_guard",  # fails any test whose logs or outputs contain a test secret
]
