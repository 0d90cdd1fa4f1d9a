//go:build jsongen_bootstrap

package oci

import (
	"github.com/mailru/easyjson/jlexer"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"hull/internal/jsonrt"
)

// The generated codecs' signatures, so that the package builds while
// ocijson_gen.go is being regenerated (go generate ./internal/oci); a new
// entry of jsonRoots needs its pair here.

func jsonDecodeSpec(*jlexer.Lexer, *specs.Spec)       {}
func jsonDecodeProcess(*jlexer.Lexer, *specs.Process) {}
func jsonDecodeState(*jlexer.Lexer, *specs.State)     {}
func jsonDecodeInitConfig(*jlexer.Lexer, *initConfig) {}
func jsonDecodeSaved(*jlexer.Lexer, *saved)           {}
func jsonDecodeSyncMsg(*jlexer.Lexer, *syncMsg)       {}
func jsonEncodeSpec(*jsonrt.Out, *specs.Spec)         {}
func jsonEncodeProcess(*jsonrt.Out, *specs.Process)   {}
func jsonEncodeState(*jsonrt.Out, *specs.State)       {}
func jsonEncodeInitConfig(*jsonrt.Out, *initConfig)   {}
func jsonEncodeSaved(*jsonrt.Out, *saved)             {}
func jsonEncodeSyncMsg(*jsonrt.Out, *syncMsg)         {}
