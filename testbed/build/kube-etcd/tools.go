//go:build tools

// Package tools names the etcd server command this module builds, so `go mod tidy` keeps its
// dependencies. go.etcd.io/etcd/server/v3 is itself package main; `go install` refuses it
// because its go.mod has replace directives, hence this small main module.
package tools

import _ "go.etcd.io/etcd/server/v3"
