//go:build jsongen_bootstrap

package oci

import (
	"github.com/mailru/easyjson/jlexer"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The generated codecs' signatures, so that the package builds while
// ocijson_gen.go is being regenerated (go generate ./internal/oci); a new
// entry of jsonRoots needs its pair here.

type jsonOut struct {
	b   []byte
	err error
}

func jsonDecodeSpec(*jlexer.Lexer, *specs.Spec)       {}
func jsonDecodeProcess(*jlexer.Lexer, *specs.Process) {}
func jsonDecodeState(*jlexer.Lexer, *specs.State)     {}
func jsonDecodeInitConfig(*jlexer.Lexer, *initConfig) {}
func jsonDecodeSaved(*jlexer.Lexer, *saved)           {}
func jsonDecodeSyncMsg(*jlexer.Lexer, *syncMsg)       {}
func jsonEncodeSpec(*jsonOut, *specs.Spec)            {}
func jsonEncodeProcess(*jsonOut, *specs.Process)      {}
func jsonEncodeState(*jsonOut, *specs.State)          {}
func jsonEncodeInitConfig(*jsonOut, *initConfig)      {}
func jsonEncodeSaved(*jsonOut, *saved)                {}
func jsonEncodeSyncMsg(*jsonOut, *syncMsg)            {}
