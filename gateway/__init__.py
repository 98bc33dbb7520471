"""The HTTP gateway: authenticates browser and API requests and turns them into bus requests."""
