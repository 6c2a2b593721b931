"""The core both front ends call: `dataplane` (clips, streams, models), `streams` (one live
stream), `inference` and `batching` (windows -> Triton requests), `scoring`, and `models`
(the catalogue read from Triton's configs)."""
