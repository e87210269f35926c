"""Local real components for kubevox tests and demos: a Kubernetes control plane, Redis with
vector search, a LiveKit server. Development tooling; not used in production images."""
