//! kubesh's local cluster: an embedded Kubernetes API server that runs pods as
//! local processes on this machine.
