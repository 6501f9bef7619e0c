pub mod bpf;
pub mod model;
pub mod netlink;
pub mod mirror;
pub mod datapath;
