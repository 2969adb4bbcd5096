mod bad_input;
mod crash;
mod flash_sale;
mod helpers;
mod live_room;
mod orders;
mod pages;
mod storage;
