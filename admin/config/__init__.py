"""Django project package of the admin service."""

import pymysql

# Django's MySQL backend imports MySQLdb; PyMySQL stands in for it (pure Python, no C build).
pymysql.install_as_MySQLdb()
