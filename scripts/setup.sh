#!/usr/bin/env bash
# Installs the system libraries the build links (oneDNN, OpenBLAS, libjpeg-turbo, libpng, zlib, Open
# MPI) and Open MPI's launcher (mpirun) when they are missing.
# Debian/Ubuntu; needs root (or sudo) only when something must be installed.
set -euo pipefail
needed=()
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || needed+=(libdnnl-dev)
[ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/cblas.h ] || needed+=(libopenblas-dev)
[ -f /usr/include/turbojpeg.h ] || needed+=(libturbojpeg0-dev)
[ -f /usr/include/png.h ] || needed+=(libpng-dev)
[ -f /usr/include/zlib.h ] || needed+=(zlib1g-dev)
pkg-config --exists ompi-c 2>/dev/null || needed+=(libopenmpi-dev)
command -v mpirun >/dev/null 2>&1 || needed+=(openmpi-bin)
command -v pkg-config >/dev/null 2>&1 || needed+=(pkg-config)
# Python's venv, for the TensorBoard reader the tests check event files with.
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || needed+=(python3-venv)
if [ "${#needed[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${needed[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${needed[@]}"
fi
