"""Jobs: compositions of transforms with their options and command lines. Nothing imports them."""
