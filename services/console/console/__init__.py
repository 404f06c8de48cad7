"""payplane's operators' console: a server-rendered web app over the services' gRPC APIs."""
