"""One module per outside system; the only place pysteps does I/O with them."""
