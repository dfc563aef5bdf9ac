"""admin's MySQL/MariaDB database backend (ENGINE "config.mysql"): see base.py."""
