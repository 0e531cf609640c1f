package synthesize

// Gaussian returns x plus independent Gaussian noise of standard deviation at least sigma
// in every cell, drawn as every measurement of MST and AIM is (the google library's
// discretised Gaussian, crypto/rand), and the standard deviation actually used: a released
// contingency table of L2 sensitivity l2 then costs dp.GaussianRho(l2, used). It is how the
// engine releases DP marginals with the synthesizer's noise and accounting.
func Gaussian(x []float64, sigma float64) (noisy []float64, used float64, err error) {
	return libraryNoise{}.gaussian(x, sigma)
}
