"""HTTP interface of the DCAT-AP Vlaanderen catalogue (`/catalog`)."""
