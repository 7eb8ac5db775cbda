//! Borrowed tensor views over host-owned buffers.

use std::ffi::c_void;
use std::marker::PhantomData;

use crate::types::Error;

/// The most dimensions a [`TensorView`] describes.
pub const MAX_DIMS: usize = 4;
/// `dtype` of 32-bit floats (the only one ABI 1.0 passes).
pub const DTYPE_F32: u8 = 1;
/// `device` of host memory (the only one ABI 1.0 passes).
pub const DEVICE_CPU: u8 = 0;

/// A DLPack-shaped view of a buffer the **host** owns. Strides are in
/// elements. ABI 1.0 passes `f32` on the CPU, 1-D (vectors) or 2-D
/// (`[batch, width]`, rows contiguous) views.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TensorView {
    /// First element.
    pub data: *mut c_void,
    /// [`DTYPE_F32`].
    pub dtype: u8,
    /// [`DEVICE_CPU`].
    pub device: u8,
    /// Number of dimensions in use (1 or 2).
    pub ndim: u8,
    /// Bit 0: the plugin may write through the view.
    pub flags: u8,
    /// Reserved, 0.
    pub reserved: u32,
    /// Extent of each dimension.
    pub shape: [u64; MAX_DIMS],
    /// Step between consecutive elements of each dimension, in elements.
    pub strides: [i64; MAX_DIMS],
}

impl TensorView {
    /// Flag bit: writable.
    pub const WRITABLE: u8 = 1;

    /// A read-only 2-D view of `rows x cols` floats at `data`, rows
    /// `row_stride` elements apart.
    pub fn matrix(data: *const f32, rows: usize, cols: usize, row_stride: usize) -> Self {
        Self {
            data: data.cast_mut().cast(),
            dtype: DTYPE_F32,
            device: DEVICE_CPU,
            ndim: 2,
            flags: 0,
            reserved: 0,
            shape: [rows as u64, cols as u64, 0, 0],
            strides: [row_stride as i64, 1, 0, 0],
        }
    }
    /// A writable 2-D view.
    pub fn matrix_mut(data: *mut f32, rows: usize, cols: usize, row_stride: usize) -> Self {
        Self { flags: Self::WRITABLE, ..Self::matrix(data, rows, cols, row_stride) }
    }
    /// A read-only 1-D view of `len` contiguous floats.
    pub fn vector(data: *const f32, len: usize) -> Self {
        Self {
            data: data.cast_mut().cast(),
            dtype: DTYPE_F32,
            device: DEVICE_CPU,
            ndim: 1,
            flags: 0,
            reserved: 0,
            shape: [len as u64, 0, 0, 0],
            strides: [1, 0, 0, 0],
        }
    }
    /// A writable 1-D view.
    pub fn vector_mut(data: *mut f32, len: usize) -> Self {
        Self { flags: Self::WRITABLE, ..Self::vector(data, len) }
    }
    /// An absent optional argument (null data, 0 dimensions).
    pub fn none() -> Self {
        Self { data: std::ptr::null_mut(), dtype: DTYPE_F32, device: DEVICE_CPU, ndim: 0, flags: 0, reserved: 0, shape: [0; MAX_DIMS], strides: [0; MAX_DIMS] }
    }

    fn check_common(&self, what: &str, writable: bool) -> Result<(), Error> {
        if self.dtype != DTYPE_F32 {
            return Err(Error::new(format!("{what}: dtype {} is not f32 ({DTYPE_F32})", self.dtype)));
        }
        if self.device != DEVICE_CPU {
            return Err(Error::new(format!("{what}: device {} is not the CPU", self.device)));
        }
        if writable && self.flags & Self::WRITABLE == 0 {
            return Err(Error::new(format!("{what}: output view is not writable")));
        }
        if !self.data.is_null() && !self.data.cast::<f32>().is_aligned() {
            return Err(Error::new(format!("{what}: data is not aligned for f32")));
        }
        Ok(())
    }

    /// Checks a 2-D view; returns `(rows, cols, row_stride)`.
    fn check_matrix(&self, what: &str, writable: bool) -> Result<(usize, usize, usize), Error> {
        self.check_common(what, writable)?;
        if self.ndim != 2 {
            return Err(Error::new(format!("{what}: expected 2 dimensions, found {}", self.ndim)));
        }
        let rows = usize::try_from(self.shape[0]).map_err(|_| Error::new(format!("{what}: too many rows")))?;
        let cols = usize::try_from(self.shape[1]).map_err(|_| Error::new(format!("{what}: too many columns")))?;
        if rows > 0 && cols > 0 {
            if self.data.is_null() {
                return Err(Error::new(format!("{what}: null data for a non-empty view")));
            }
            if self.strides[1] != 1 && cols > 1 {
                return Err(Error::new(format!("{what}: column stride {} (rows must be contiguous)", self.strides[1])));
            }
            if self.strides[0] < cols as i64 && rows > 1 {
                return Err(Error::new(format!("{what}: row stride {} is less than the {cols} columns", self.strides[0])));
            }
        }
        let stride = if rows > 1 { self.strides[0] as usize } else { cols };
        Ok((rows, cols, stride))
    }

    /// Checks a 1-D view; returns its length.
    fn check_vector(&self, what: &str, writable: bool) -> Result<usize, Error> {
        self.check_common(what, writable)?;
        if self.ndim != 1 {
            return Err(Error::new(format!("{what}: expected 1 dimension, found {}", self.ndim)));
        }
        let len = usize::try_from(self.shape[0]).map_err(|_| Error::new(format!("{what}: too long")))?;
        if len > 0 && self.data.is_null() {
            return Err(Error::new(format!("{what}: null data for a non-empty view")));
        }
        if len > 1 && self.strides[0] != 1 {
            return Err(Error::new(format!("{what}: stride {} (vectors must be contiguous)", self.strides[0])));
        }
        Ok(len)
    }

    /// Borrows a 1-D view as a slice.
    ///
    /// # Safety
    /// The view describes valid, initialised memory that nothing writes for `'a`.
    pub unsafe fn as_slice<'a>(view: *const TensorView, what: &str) -> Result<&'a [f32], Error> {
        // SAFETY: the caller guarantees the view pointer is valid when non-null.
        let v = unsafe { view.as_ref() }.ok_or_else(|| Error::new(format!("{what}: null view")))?;
        let len = v.check_vector(what, false)?;
        if len == 0 {
            return Ok(&[]);
        }
        // SAFETY: checked non-null, aligned and contiguous; validity is the caller's promise.
        Ok(unsafe { std::slice::from_raw_parts(v.data.cast::<f32>(), len) })
    }

    /// Borrows a writable 1-D view as a mutable slice.
    ///
    /// # Safety
    /// The view describes valid memory that nothing else accesses for `'a`.
    pub unsafe fn as_mut_slice<'a>(view: *const TensorView, what: &str) -> Result<&'a mut [f32], Error> {
        // SAFETY: the caller guarantees the view pointer is valid when non-null.
        let v = unsafe { view.as_ref() }.ok_or_else(|| Error::new(format!("{what}: null view")))?;
        let len = v.check_vector(what, true)?;
        if len == 0 {
            return Ok(&mut []);
        }
        // SAFETY: checked non-null, aligned, contiguous and writable; exclusivity is the caller's promise.
        Ok(unsafe { std::slice::from_raw_parts_mut(v.data.cast::<f32>(), len) })
    }
}

/// A read-only `[rows, cols]` matrix of `f32` borrowed from the host; rows
/// are contiguous slices.
#[derive(Debug, Clone, Copy)]
pub struct Tensor<'a> {
    data: *const f32,
    rows: usize,
    cols: usize,
    stride: usize,
    _p: PhantomData<&'a [f32]>,
}

// SAFETY: a `Tensor` is a shared borrow of `f32`s, like `&[f32]`.
unsafe impl Send for Tensor<'_> {}
// SAFETY: as for `Send`.
unsafe impl Sync for Tensor<'_> {}

impl<'a> Tensor<'a> {
    /// Borrows a contiguous row-major slice as `[rows, cols]`.
    pub fn from_slice(data: &'a [f32], rows: usize, cols: usize) -> Result<Self, Error> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::new(format!("slice of {} floats is not [{rows}, {cols}]", data.len())));
        }
        Ok(Self { data: data.as_ptr(), rows, cols, stride: cols, _p: PhantomData })
    }
    /// Checks and borrows a host view.
    ///
    /// # Safety
    /// The view describes valid, initialised memory that nothing writes for `'a`.
    pub unsafe fn from_view(view: *const TensorView, what: &str) -> Result<Self, Error> {
        // SAFETY: the caller guarantees the view pointer is valid when non-null.
        let v = unsafe { view.as_ref() }.ok_or_else(|| Error::new(format!("{what}: null view")))?;
        let (rows, cols, stride) = v.check_matrix(what, false)?;
        Ok(Self { data: v.data.cast::<f32>(), rows, cols, stride, _p: PhantomData })
    }
    /// Number of rows (the batch).
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub(crate) fn stride_elems(&self) -> usize {
        self.stride
    }
    /// Number of columns (the width).
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Row `i`. Panics if `i >= rows()`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        assert!(i < self.rows, "row {i} out of range for {} rows", self.rows);
        if self.cols == 0 {
            return &[];
        }
        // SAFETY: `i < rows`, the row lies within the view checked in `from_view`/`from_slice`.
        unsafe { std::slice::from_raw_parts(self.data.add(i * self.stride), self.cols) }
    }
    /// Element `[r, c]`. Panics when out of range.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.row(r)[c]
    }
    /// The rows in order.
    pub fn iter_rows(&self) -> impl Iterator<Item = &'a [f32]> + '_ {
        (0..self.rows).map(move |i| self.row(i))
    }
    /// The whole matrix as one slice, if its rows are adjacent.
    pub fn as_slice(&self) -> Option<&'a [f32]> {
        if self.stride == self.cols || self.rows <= 1 {
            if self.rows == 0 || self.cols == 0 {
                return Some(&[]);
            }
            // SAFETY: rows are adjacent, so `rows * cols` floats are in the view.
            Some(unsafe { std::slice::from_raw_parts(self.data, self.rows * self.cols) })
        } else {
            None
        }
    }
}

/// A writable `[rows, cols]` matrix of `f32` borrowed from the host.
#[derive(Debug)]
pub struct TensorMut<'a> {
    data: *mut f32,
    rows: usize,
    cols: usize,
    stride: usize,
    _p: PhantomData<&'a mut [f32]>,
}

// SAFETY: a `TensorMut` is an exclusive borrow of `f32`s, like `&mut [f32]`.
unsafe impl Send for TensorMut<'_> {}

impl<'a> TensorMut<'a> {
    /// Borrows a contiguous row-major slice as `[rows, cols]`.
    pub fn from_slice(data: &'a mut [f32], rows: usize, cols: usize) -> Result<Self, Error> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::new(format!("slice of {} floats is not [{rows}, {cols}]", data.len())));
        }
        Ok(Self { data: data.as_mut_ptr(), rows, cols, stride: cols, _p: PhantomData })
    }
    /// Checks and borrows a writable host view.
    ///
    /// # Safety
    /// The view describes valid memory that nothing else accesses for `'a`.
    pub unsafe fn from_view(view: *const TensorView, what: &str) -> Result<Self, Error> {
        // SAFETY: the caller guarantees the view pointer is valid when non-null.
        let v = unsafe { view.as_ref() }.ok_or_else(|| Error::new(format!("{what}: null view")))?;
        let (rows, cols, stride) = v.check_matrix(what, true)?;
        Ok(Self { data: v.data.cast::<f32>(), rows, cols, stride, _p: PhantomData })
    }
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Row `i`, read-only.
    pub fn row(&self, i: usize) -> &[f32] {
        assert!(i < self.rows, "row {i} out of range for {} rows", self.rows);
        if self.cols == 0 {
            return &[];
        }
        // SAFETY: `i < rows`; the row lies within the checked view.
        unsafe { std::slice::from_raw_parts(self.data.add(i * self.stride), self.cols) }
    }
    /// Row `i`, writable. Panics if `i >= rows()`.
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        assert!(i < self.rows, "row {i} out of range for {} rows", self.rows);
        if self.cols == 0 {
            return &mut [];
        }
        // SAFETY: `i < rows`; the row lies within the checked, writable view
        // and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.data.add(i * self.stride), self.cols) }
    }
    /// Sets every element to `v`.
    pub fn fill(&mut self, v: f32) {
        for i in 0..self.rows {
            self.row_mut(i).fill(v);
        }
    }
    /// A read-only view of the same data.
    pub fn as_tensor(&self) -> Tensor<'_> {
        Tensor { data: self.data, rows: self.rows, cols: self.cols, stride: self.stride, _p: PhantomData }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_round_trip_and_refuse_bad_layouts() {
        let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let v = TensorView::matrix(data.as_ptr(), 2, 2, 3);
        // SAFETY: `v` views `data`.
        let t = unsafe { Tensor::from_view(&v, "x") }.unwrap();
        assert_eq!(t.row(1), &[4.0, 5.0]);
        assert!(t.as_slice().is_none());
        let mut bad = v;
        bad.strides[1] = 2;
        // SAFETY: checked before use.
        let e = unsafe { Tensor::from_view(&bad, "states") }.unwrap_err();
        assert!(e.0.contains("states: column stride 2"), "{e}");
        // SAFETY: checked before use.
        let e = unsafe { TensorMut::from_view(&v, "next") }.unwrap_err();
        assert!(e.0.contains("not writable"), "{e}");
        let vec = TensorView::vector(data.as_ptr(), 6);
        // SAFETY: `vec` views `data`.
        assert_eq!(unsafe { TensorView::as_slice(&vec, "v") }.unwrap().len(), 6);
        // SAFETY: checked before use.
        assert!(unsafe { Tensor::from_view(&vec, "v") }.is_err());
    }
}
