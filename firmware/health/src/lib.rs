//! Pure fold of component facts into the appliance health and its LED look.
