pub mod login;
pub mod logout;
pub mod me;
pub mod refresh;
pub mod ws_ticket;
