"""Cluster DNS: the config model, its pure renderers (CoreDNS, kube-dns) and the ConfigMap apply."""
