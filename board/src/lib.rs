//! Status LEDs and reset button over embedded-hal; Raspberry Pi, GPIO cdev and simulated backends.
