//! refpipe
