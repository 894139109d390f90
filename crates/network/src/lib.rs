//! Container networking (see README.md): bridge networks wired with netlink, address
//! management, nftables NAT and isolation, published ports, the embedded DNS server and
//! the /etc files that go with them. [`Networks`] is what the daemon holds.

pub mod bridge;
pub mod conntrack;
pub mod dns;
pub mod etc;
pub mod firewall;
pub mod ipam;
mod manager;
pub mod model;
pub mod netns;
pub mod nl;
pub mod ports;

pub use manager::{Config, CreateRequest, NameLink, Networks};
pub use model::{Endpoint, Network};
