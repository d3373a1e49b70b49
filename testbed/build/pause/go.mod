module pysteps.local/testbed/pause

go 1.22
