

fz
*
web