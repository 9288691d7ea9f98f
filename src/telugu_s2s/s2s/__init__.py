"""S2S transformer (torch) and its Triton serving; `protocol` and `client` import no torch."""
