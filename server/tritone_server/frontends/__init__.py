"""The gateway's two skins over `core.dataplane`: gRPC (`service`, `interceptors`) and HTTP
(`http`), with `status` mapping domain errors to both."""
