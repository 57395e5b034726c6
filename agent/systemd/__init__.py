"""systemd: unit syntax, rendering and installing units, the CPU plan, systemctl and sd_notify."""
