# hack/lib.sh: shell helpers shared by hack/ and bench/ scripts (sourced).

# hull_test_config DIR NAME BRIDGE SUBNET: writes DIR/hull.toml (the local registry 127.0.0.1:5000 as
# mirror of the registries critest hard-codes) and DIR/cni/10-NAME.conflist (bridge BRIDGE on SUBNET,
# host-local IPAM under DIR/ipam, portmap) for a private hulld.
hull_test_config() {
  local dir=$1 name=$2 bridge=$3 subnet=$4
  mkdir -p "$dir/cni"
  cat > "$dir/cni/10-$name.conflist" <<J
{"cniVersion":"1.0.0","name":"hull-$name","plugins":[{"type":"bridge","bridge":"$bridge","isGateway":true,"ipMasq":false,
"ipam":{"type":"host-local","ranges":[[{"subnet":"$subnet"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"$dir/ipam"}},
{"type":"portmap","capabilities":{"portMappings":true}}]}
J
  cat > "$dir/hull.toml" <<T
[registry]
insecure = ["127.0.0.1:5000"]
[registry.mirrors]
"registry.k8s.io" = ["http://127.0.0.1:5000"]
"k8s.gcr.io" = ["http://127.0.0.1:5000"]
"gcr.io" = ["http://127.0.0.1:5000"]
"public.ecr.aws" = ["http://127.0.0.1:5000"]
[cni]
conf_dir = "$dir/cni"
T
}
