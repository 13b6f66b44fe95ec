pub mod login;
pub mod logout;
pub mod me;
pub mod oidc;
pub mod refresh;
pub mod sessions;
pub mod ws_ticket;
