pub mod toxiproxy;
