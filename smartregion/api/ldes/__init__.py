"""HTTP interface of the event streams (`/ldes`)."""
