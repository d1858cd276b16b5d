//! ferry: carries container images across an air gap.
